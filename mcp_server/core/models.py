"""The typed records that flow between MCP tools, backends and workflow states.

They carry references (URIs, names, versions), never data: a Step Functions state's payload is
capped at 256 KiB. URIs are ``file:///absolute/path`` locally and ``s3://bucket/key`` on AWS.
Times are ISO-8601 strings in UTC; durations are seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.spec.schema import (
    ComputeSpec,
    EnvironmentSpec,
    FairnessSpec,
    PreprocessingSpec,
    TuningSpec,
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueRef(_Record):
    """The GitHub issue a run belongs to."""

    number: int = Field(ge=1)
    title: str = ""
    url: str = ""
    author: str = ""
    repository: str = Field("local/issues", description="owner/name")


class DatasetRef(_Record):
    """A prepared, versioned dataset: raw data plus train/validation/test splits.

    Row-level cleaning (duplicates, rows with missing values when ``missing_values: drop``,
    outliers on the training split) is applied here; column transforms (imputation, encoding,
    scaling, feature selection) are fitted inside the model pipeline by the training job.
    """

    dataset_id: str = Field(description="'{name}-{data_version}'")
    name: str
    source: str
    data_version: str = Field(description="first 12 hex digits of the SHA-256 of the raw data")
    uri: str = Field(description="root of datasets/{dataset_id}/")
    splits: dict[str, str] = Field(
        description="split name (train, validation, test) -> URI of the folder holding data.parquet"
    )
    split_sizes: dict[str, int]
    task: str
    target: str | None
    feature_names: list[str]
    feature_types: dict[str, Literal["numeric", "categorical"]]
    class_labels: list[str] | None = Field(
        None, description="classification: original label of each integer class code 0..K-1"
    )
    class_counts: dict[str, int] | None = None
    rows_raw: int
    rows_removed: dict[str, int] = Field(
        default_factory=dict, description="duplicates, missing, outliers, feedback -> rows removed"
    )
    rows_feedback: int = Field(
        0, description="labelled captured rows added to the source's (retraining.feedback); in rows_raw"
    )


class TrainingJobRequest(_Record):
    """What a training job needs: the program, its hyperparameters, channels and limits."""

    job_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    task: str
    algorithm: str
    hyperparameters: dict[str, Any]
    preprocessing: PreprocessingSpec
    target: str | None
    feature_types: dict[str, Literal["numeric", "categorical"]]
    seed: int = Field(0, ge=0, description="random seed of the estimator and its preprocessing")
    channels: dict[str, str] = Field(
        description="channel name (train, validation) -> URI; none for reinforcement learning"
    )
    environment: EnvironmentSpec | None = Field(None, description="control tasks: the Gymnasium environment")
    compute: ComputeSpec
    experiment: str = Field(description="tracking experiment, e.g. 'issue-12'")
    tags: dict[str, str] = Field(
        default_factory=dict, description="lineage: issue, execution, spec_hash, data_version"
    )


TrainingStatus = Literal["InProgress", "Completed", "Failed", "Stopped"]


class TuningJobRequest(_Record):
    """A hyperparameter tuning job: a search over ``tuning.search_space``, one training job per trial.

    Every trial is ``training`` with the sampled hyperparameters laid over its static ones.
    """

    tuning_job_name: str = Field(
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$",
        description="1 to 32 characters (SageMaker's HyperParameterTuningJobName); trials are named after it",
    )
    tuning: TuningSpec
    training: TrainingJobRequest = Field(
        description="the template of every trial: static hyperparameters, channels, limits, experiment, tags"
    )


class TuningTrial(_Record):
    """One trial of a hyperparameter tuning job: a training job with hyperparameters from the search."""

    number: int = Field(ge=1, description="1-based, in the order the trials started")
    job_name: str = Field(description="the trial's training job")
    hyperparameters: dict[str, Any] = Field(description="the values the search chose (the others are static)")
    status: TrainingStatus
    objective: float | None = Field(
        None, description="the objective metric's final value; None unless Completed"
    )
    failure_reason: str | None = Field(None, description="why the trial failed (shortened to 200 characters)")
    duration_s: float | None = Field(None, description="the training job's run time, seconds")
    tracking_run_id: str | None = Field(
        None, description="the trial's tracking run (a child of the search's)"
    )


class TuningJob(_Record):
    """A hyperparameter tuning job as ``describe_tuning_job`` reports it, with every trial."""

    name: str
    status: Literal["InProgress", "Completed", "Failed"]
    algorithm: str
    strategy: Literal["grid", "random", "bayesian"]
    objective_metric: str = Field(
        description="the printed metric each trial is scored on, e.g. validation_f1"
    )
    direction: Literal["maximize", "minimize"]
    max_trials: int = Field(description="trials the search runs (a grid search runs its whole grid)")
    parallel_trials: int
    trials: list[TuningTrial] = Field(default_factory=list, description="in trial-number order")
    best_trial: int | None = Field(None, description="number of the best completed trial")
    failure_reason: str | None = Field(
        None, description="Failed: every trial failed (the first one's reason)"
    )
    tracking_run_id: str | None = Field(
        None, description="the search's tracking run; trials are its children"
    )
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = Field(None, description="wall time of the search, seconds")

    def best(self) -> TuningTrial | None:
        """Return the best completed trial, or None while no trial has completed."""
        return next((t for t in self.trials if t.number == self.best_trial), None)


class TrainingJob(_Record):
    """A training job as ``describe_training_job`` reports it."""

    job_name: str
    status: TrainingStatus
    secondary_status: str = Field(
        "", description="Starting, Training, Completed, Failed, MaxRuntimeExceeded, ..."
    )
    failure_reason: str | None = None
    algorithm: str
    model_uri: str | None = Field(None, description="folder (local) or model.tar.gz (S3)")
    log_uri: str | None = None
    metrics: dict[str, float] = Field(
        default_factory=dict, description="final value of each metric the program printed"
    )
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    tracking_run_id: str | None = Field(None, description="MLflow run of this job")
    notes: list[str] = Field(
        default_factory=list, description="what the backend could not do as asked (e.g. spot locally)"
    )
    tuning: TuningJob | None = Field(
        None, description="set when this job is the best trial of a hyperparameter tuning job: the search"
    )


class EvaluationRequest(_Record):
    """Evaluate a trained model on the held-out test split, as a processing job."""

    evaluation_id: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="also the job name")
    task: str
    algorithm: str = ""
    model_uri: str
    dataset: DatasetRef
    metrics: list[str] = Field(description="metric names to compute (see catalog.METRICS_BY_TASK)")
    tracking_run_id: str | None = Field(None, description="MLflow run to log the results into")
    explainability: Literal["shap"] | None = None
    fairness: FairnessSpec | None = None
    environment: EnvironmentSpec | None = Field(
        None, description="control tasks: the Gymnasium environment the greedy episodes are played in"
    )
    max_runtime_s: int = Field(1800, ge=1, description="time limit of the processing job, seconds")


class FeatureImportance(_Record):
    """One feature's global importance: mean absolute SHAP value over the explained rows."""

    feature: str
    mean_abs_shap: float


class ShapSummary(_Record):
    """Global SHAP feature importance of a model."""

    explainer: Literal["tree", "linear", "kernel", "permutation"]
    sample_size: int = Field(description="rows explained")
    background_size: int | None = Field(None, description="background rows (kernel/permutation)")
    top_features: list[FeatureImportance] = Field(description="most important first")
    duration_s: float


class FairnessReport(_Record):
    """Per-group metrics on a sensitive feature, with fairlearn's between-group difference and ratio."""

    sensitive_feature: str
    metric: str = Field(description="the metric compared across groups")
    by_group: dict[str, dict[str, float]] = Field(description="group -> metric -> value")
    difference: float = Field(description="largest minus smallest group value of `metric`")
    ratio: float = Field(description="smallest over largest group value of `metric`")
    max_difference: float
    passed: bool


class EvaluationReport(_Record):
    """What one evaluation found: metrics per split, plots, explanations, fairness, baseline.

    ``metrics`` are the held-out figures the judge compares with the thresholds: the test split
    for supervised models, k-means, DBSCAN and PCA; the training rows for t-SNE (it cannot
    embed new rows; ``notes`` says so); greedy evaluation episodes for reinforcement learning.
    """

    evaluation_id: str
    metrics: dict[str, float] = Field(description="held-out figures (see the class docstring)")
    validation_metrics: dict[str, float] = Field(default_factory=dict)
    train_metrics: dict[str, float] = Field(default_factory=dict)
    gaps: dict[str, float] = Field(
        default_factory=dict, description="metric -> train value minus test value (overfitting when large)"
    )
    n_test: int = Field(description="test rows, or greedy evaluation episodes for control tasks")
    n_validation: int = 0
    class_counts: dict[str, int] | None = Field(None, description="classification: training rows per class")
    cluster_sizes: dict[str, int] | None = Field(
        None, description="clustering: training rows per cluster label ('-1' is DBSCAN's noise)"
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="family figures: variance per component, noise fraction, episode returns, ...",
    )
    notes: list[str] = Field(default_factory=list, description="what the reader should know, in sentences")
    plots: dict[str, str] = Field(default_factory=dict, description="plot name -> PNG URI")
    shap: ShapSummary | None = None
    fairness: FairnessReport | None = None
    baseline_uri: str | None = Field(None, description="drift baseline (per-feature statistics, histograms)")
    report_uri: str = Field(description="report.json URI")
    log_uri: str | None = None
    duration_s: float


class Lineage(_Record):
    """Where a model came from."""

    issue_number: int
    issue_url: str = ""
    execution_name: str
    job_name: str
    spec_hash: str
    data_version: str
    dataset_id: str


class RegistrationRequest(_Record):
    """Register a trained model as a new version of a model package group."""

    model_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    model_uri: str
    tracking_run_id: str | None
    metrics: dict[str, float]
    lineage: Lineage
    model_type: str
    algorithm: str
    feature_names: list[str]
    hyperparameters: dict[str, Any]
    preprocessing: dict[str, Any]
    baseline_uri: str | None = Field(None, description="drift baseline saved with the model")


class RegisteredModel(_Record):
    """A registered model version."""

    name: str
    version: str = Field(description="registry version (MLflow version number or package ARN)")
    semantic_version: str = Field(description="MAJOR.MINOR.PATCH, see core.versioning")
    aliases: list[str] = Field(default_factory=list)
    model_uri: str = Field(description="models:/NAME/VERSION locally")
    run_id: str | None = None


class Comment(_Record):
    """A comment on an issue."""

    id: int
    issue_number: int
    body: str
    author: str = ""
    url: str = ""
    created_at: str = ""


class HistoryRecord(_Record):
    """One run's record, rendered to Markdown under training_history/."""

    record_id: str = Field(description="execution name; one record per execution and attempt")
    issue: IssueRef
    status: Literal["succeeded", "rejected", "awaiting_operator", "cancelled", "failed"]
    attempt: int = 1
    spec: dict[str, Any]
    spec_hash: str
    dataset: DatasetRef | None = None
    training: TrainingJob | None = None
    evaluation: EvaluationReport | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    verdict: dict[str, Any] | None = Field(None, description="judge output: verdict, reasons")
    model: RegisteredModel | None = None
    error: dict[str, str] | None = Field(None, description="Error and Cause of a failed run")
    operator: dict[str, Any] | None = Field(
        None, description="the operator's decision on this attempt: action, by, at, patch, diff"
    )
    timings: dict[str, float] = Field(default_factory=dict, description="state name -> seconds")
    deployment: dict[str, Any] | None = Field(
        None, description="the deployment's progress (core.deployment.progress.DeploymentProgress)"
    )
    trigger: dict[str, Any] | None = Field(
        None, description="what started a retrain run (core.workflow.state.Trigger); None for an issue"
    )
    started_at: str
    finished_at: str


class HistoryCommit(_Record):
    """Where a history record landed."""

    path: str = Field(description="record path relative to the repository root")
    commit_sha: str
    index_path: str
    repository: str = Field(description="local folder or owner/name")
    url: str | None = Field(
        default=None, description="the record's web page at that commit (GitHub); None locally"
    )


class NotificationReceipt(_Record):
    """A published notification."""

    message_id: str
    topic: str


class WaitingRun(_Record):
    """A run waiting in ``AskOperator`` for an authorised reply on its issue.

    ``state`` is the workflow state when it started waiting: resuming the run (after a restart,
    or when the operator answers) starts from it.
    """

    run_id: str = Field(description="the run's first execution name; stable across resumes")
    issue_number: int
    execution_arn: str
    task_token: str
    attempt: int
    max_attempts: int
    state: dict[str, Any]
    waiting_since: str
    timeout_at: str
    resumes: int = Field(0, description="how many times the run was resumed after a restart")


class Delivery(_Record):
    """A webhook delivery, kept from its receipt until its work is done (and after, for redeliveries).

    Attributes:
        delivery_id: ``X-GitHub-Delivery``; a second delivery with the same id starts nothing.
        event: ``X-GitHub-Event`` (``issues``, ``issue_comment`` or ``push``).
        payload: the decoded body (already checked against the event's shape).
        received_at: ISO-8601 UTC.
        status: ``received`` (answered, not yet worked on), ``processing`` (a runtime is on it),
            ``done`` (``outcome`` says what happened).
        runtime_id: the runtime processing it (a dead runtime's delivery is taken again).
        outcome: the handler's result: ``status`` (started, invalid_spec, refused, resumed, ...)
            and what it started or said.
    """

    delivery_id: str = Field(min_length=1, max_length=200)
    event: Literal["issues", "issue_comment", "push"]
    payload: dict[str, Any]
    received_at: str
    status: Literal["received", "processing", "done"] = "received"
    runtime_id: str | None = None
    outcome: dict[str, Any] | None = None
    attempts: int = Field(0, description="tries of its work so far (a released delivery is tried again)")
