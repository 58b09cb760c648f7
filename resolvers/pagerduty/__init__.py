"""PagerDuty: schedules' and escalation policies' on-call users."""
