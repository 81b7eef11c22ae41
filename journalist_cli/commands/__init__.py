"""Thin click commands; each module registers one command or group."""
