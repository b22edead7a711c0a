"""The Kivy kiosk in a real window (Xvfb when there is no display), driven by touch.

Each test runs one scenario (``scenarios.py``) in a kiosk process of its own
(``driver.py``) against ``kit_on_rig``'s emulated devices, then checks the sealed records
it left; screenshots go to ``artefacts/screens/``. No bench: the kiosk's devices here are
always the emulated ones.
"""
