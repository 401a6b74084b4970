"""The web window (`monitor serve`): pages, feedback, topic feeds, API, health, metrics."""
