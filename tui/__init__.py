"""The Textual dashboard; talks to the control API only."""
