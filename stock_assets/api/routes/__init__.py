"""One router per area: symbols and bars, features, work (runs launched), results."""
