"""Domain rules, scheduler, dispatcher, stores and providers of the EDM dispatch engine."""
