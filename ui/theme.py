"""The kiosk's colours: high contrast for a dim room or a sunny window."""

from __future__ import annotations

# High contrast: white on near-black, saturated buttons with a dark or white label that
# stays readable in sunlight at a bedside window.
COLOURS = {
    "bg": (0.06, 0.07, 0.09, 1),
    "panel": (0.14, 0.16, 0.20, 1),
    "text": (1, 1, 1, 1),
    "muted": (0.78, 0.82, 0.88, 1),
    "primary": (0.0, 0.40, 0.85, 1),
    "go": (0.0, 0.52, 0.25, 1),
    "warn": (1.0, 0.78, 0.0, 1),
    "danger": (0.78, 0.10, 0.10, 1),
    "neutral": (0.30, 0.33, 0.38, 1),
    "paper": (1, 1, 1, 1),
    "ink": (0, 0, 0, 1),
    "done": (0.0, 0.52, 0.25, 1),
    "current": (1.0, 0.78, 0.0, 1),
    "exception": (0.55, 0.35, 0.75, 1),
    "low": (0.85, 0.45, 0.0, 1),
    "todo": (0.30, 0.33, 0.38, 1),
    "ok_text": (0.40, 0.92, 0.50, 1),
    # a disabled button, whatever its tone: flat dark grey with a dim label, so it never
    # passes for an enabled one
    "disabled": (0.17, 0.19, 0.22, 1),
    "disabled_text": (0.52, 0.55, 0.60, 1),
}
