"""One widget (or screen) per module; each defines the messages it posts."""
