"""The console application: wiring of engine, widgets, keys and the command line."""
