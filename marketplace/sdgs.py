"""The 17 UN Sustainable Development Goals (https://sdgs.un.org/goals)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

SDG_NAMES = {
    1: _l("No Poverty"),
    2: _l("Zero Hunger"),
    3: _l("Good Health and Well-being"),
    4: _l("Quality Education"),
    5: _l("Gender Equality"),
    6: _l("Clean Water and Sanitation"),
    7: _l("Affordable and Clean Energy"),
    8: _l("Decent Work and Economic Growth"),
    9: _l("Industry, Innovation and Infrastructure"),
    10: _l("Reduced Inequalities"),
    11: _l("Sustainable Cities and Communities"),
    12: _l("Responsible Consumption and Production"),
    13: _l("Climate Action"),
    14: _l("Life Below Water"),
    15: _l("Life on Land"),
    16: _l("Peace, Justice and Strong Institutions"),
    17: _l("Partnerships for the Goals"),
}
