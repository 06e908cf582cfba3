"""Monitoring logic: drift statistics, Model Monitor's file formats, schedules and alert rules. Pure."""
