"""Program reports: the outcomes clinic leadership is judged by."""
