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

# Text sizes, as font sizes in millimetres of glass (times ``app.mm``, the pixels per mm
# of the 7-inch diagonal). Roboto's capitals are 0.711 of the font size, so body text has
# capitals of at least 3.0 mm and the status bar of at least 2.5 mm on both panels, read
# at arm's length by an officer kneeling at a bed. The 800x480 panel's pixels are not
# square (154.2 mm x 85.9 mm: 0.179 mm tall), so its capitals are smaller in mm than
# ``app.mm`` says: 4.6 here gives 3.04 mm there and 3.27 mm on the 720x1280 panel
# (tests/ui/screen_checks.py measures them as drawn).
TEXT_MM = {
    "body": 4.6,      # labels, buttons, fields: capitals 3.04 mm (800x480) / 3.27 mm
    "status": 3.9,    # the status bar: capitals 2.51 mm / 2.78 mm
    "heading": 5.1,   # a recording step's title, a choice's question: 3.40 / 3.63 mm
    "title": 5.9,     # a screen's or a dialog's title: 3.94 / 4.24 mm
    "key": 6.4,       # the PIN keypad's digits
}
