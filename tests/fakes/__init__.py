"""Local stand-ins for third-party services (FCM), speaking their real wire formats."""
