"""Server-side code the three services share (not part of the user package `datapool`)."""
