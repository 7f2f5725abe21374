"""Steps: one desired state each. A step compares facts with what it wants and plans only the
differences (file writes and commands); no actions planned means the step is ``ok``."""
