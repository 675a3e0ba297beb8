"""Benchmarks for StarPose Mobile: faithful peer networks, delegation counts, on-device latency.

Lives at the repository root next to the package and is not shipped in the wheel.
"""
