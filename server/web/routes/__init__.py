"""One router per area of the source interface."""
