"""Cases from the outside attack (issue 9), each kept as a test so it stays fixed."""
