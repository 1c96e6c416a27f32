"""End-to-end experiment flows behind the CLI commands: data -> training -> evaluation -> report."""
