"""Tests of the config layer (meshcore.config): pure Python, no engine needed."""
