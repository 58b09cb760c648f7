"""Real parts for tests: private Redis servers, servers on free ports, condition waits."""
