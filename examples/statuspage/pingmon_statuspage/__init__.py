"""pingmon's ``statuspage`` provider type: Atlassian Statuspage's public status summary."""
