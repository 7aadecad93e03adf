"""Data-subject requests: intake (OpenDSR, web form), deadlines, access packages, erasure."""
