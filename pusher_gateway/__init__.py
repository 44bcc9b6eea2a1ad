"""chat500-pushgw: the Matrix Push Gateway API in front of FCM HTTP v1 (see README.md)."""
