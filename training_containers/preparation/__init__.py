"""The data preparation program, a job under the SageMaker Processing contract (``prepare``)."""
