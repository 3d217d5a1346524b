"""Command-line front ends: the only place that parses flags, prints, draws bars and picks exit codes."""
