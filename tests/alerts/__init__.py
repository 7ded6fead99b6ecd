"""Tests of pingmon's Prometheus alert rules and the example Alertmanager configuration."""
