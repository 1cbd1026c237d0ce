"""Runbook drills: each runbook's commands run against a real local cluster."""
