"""Deployment logic: traffic-shift plans, endpoint metrics, alarms and champion/challenger. Pure."""
