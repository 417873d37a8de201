"""One module per user command; each has add_arguments(name, parser) and handle(args) -> exit code."""
