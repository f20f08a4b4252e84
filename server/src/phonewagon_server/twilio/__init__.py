"""Live calls from Twilio: its webhook signature, our TwiML, and a simulator of Twilio."""
