"""Sandboxes that stand in for PowerSchool and SchoolEngage. Never imported by plugins/writeback."""
