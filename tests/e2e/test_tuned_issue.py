"""A tuned issue end to end: a bayesian search of 6 trials, 2 at a time, through the workflow.

The best trial's model is the one the workflow evaluates and registers, and the run's record
lists every trial.
"""

from __future__ import annotations

import pytest

from mcp_server.backends.local.mlflow_store import open_client
from mcp_server.core.jobs.tuning import PARENT_RUN_TAG
from mcp_server.core.models import TrainingJob
from mcp_server.core.rendering.history_markdown import front_matter
from statemachine.webhooks import issue_payload, read_issue_file
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


def test_the_tuned_example_registers_its_best_trial_and_records_every_trial(runtime):
    title, body = read_issue_file(EXAMPLES / "breast-cancer-tuned-xgboost.md")
    issue = runtime.backends.issues.create_issue(
        title=title, body=body, author="alice", labels=["mlops:train"]
    )
    response = runtime.deliver("issues", issue_payload(issue.number, title, body, "alice", "OWNER"))
    assert response["status"] == "started", response
    record = runtime.wait(response["execution_arn"], timeout_s=300)
    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    state = record["output"]

    # The workflow's training value is the best trial's job, carrying the search.
    training = TrainingJob.model_validate(state["training"])
    tuning = training.tuning
    assert tuning is not None and tuning.status == "Completed"
    assert (tuning.strategy, tuning.objective_metric, tuning.max_trials, tuning.parallel_trials) == (
        "bayesian",
        "validation_f1",
        6,
        2,
    )
    assert [t.number for t in tuning.trials] == [1, 2, 3, 4, 5, 6]
    assert all(t.status == "Completed" for t in tuning.trials)
    assert len({t.job_name for t in tuning.trials}) == 6
    best = tuning.best()
    assert best is not None
    assert best.objective == max(t.objective for t in tuning.trials)
    assert best.objective >= tuning.trials[0].objective
    assert training.job_name == best.job_name and training.tracking_run_id == best.tracking_run_id
    assert training.model_uri.endswith(f"/jobs/{best.job_name}/model")
    assert training.metrics["validation_f1"] == best.objective

    # The registered version is the best trial's model, with the hyperparameters it was trained with.
    client = open_client(runtime.settings)
    model = state["model"]
    version = client.get_model_version(model["name"], model["version"])
    assert version.tags["job_name"] == best.job_name
    assert version.run_id == best.tracking_run_id
    logged = client.get_run(best.tracking_run_id).data.params
    for name, value in best.hyperparameters.items():
        assert float(logged[name]) == pytest.approx(value)

    # Every trial is a child of the search's run.
    for trial in tuning.trials:
        assert client.get_run(trial.tracking_run_id).data.tags[PARENT_RUN_TAG] == tuning.tracking_run_id

    # The record lists every trial and marks the best; the closing comment names it.
    text = (runtime.settings.history_repo_path / state["history"]["path"]).read_text()
    assert front_matter(text)["status"] == "succeeded"
    section = text.split("## Hyperparameter tuning", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "Completed" in line]
    assert len(rows) == 6
    assert f"| **{best.number} (best)** |" in section
    comments = runtime.backends.issues.list_comments(issue.number)
    closing = next(c for c in comments if "Model registered" in c.body)
    assert f"best trial {best.number} with validation_f1" in closing.body
