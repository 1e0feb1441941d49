"""pipelines: the steps that join neurosym and kg, and the neurosym CLI."""
