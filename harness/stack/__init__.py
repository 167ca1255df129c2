"""The embedded local stack: servers counterbench starts on 127.0.0.1 and stops afterwards."""
