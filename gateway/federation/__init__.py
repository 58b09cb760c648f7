"""Generic federation machinery: merged schema, planner and splicer (no system knowledge)."""
