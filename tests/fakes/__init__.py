"""In-process stand-ins for external services, served over real sockets for the tests."""
