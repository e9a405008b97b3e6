"""Thin DVC stage entry points: parse the paths and params of one stage, call one `vc` function, write."""
