"""Real-repository "implement this" benchmark: functions of real projects blanked (see __main__)."""
