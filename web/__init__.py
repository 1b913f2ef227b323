"""The front end: the chat widget (widget.js, widget.css, widget/, shared/) and the demo store page (store/)."""
