"""Reinforcement-learning training program (``python -m training_containers.rl.train``).

PPO and DQN through Ray RLlib, A3C as a plain torch implementation (``a3c``); greedy policies
load without Ray (``policy``).
"""
