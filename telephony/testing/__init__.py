"""The Twilio *client* side, for testing the service from outside: an emulated phone.

`EmulatedCall` dials the voice webhook like Twilio, streams caller audio in real time
(or faster), plays bot audio and echoes marks only once it has played, and honours
`clear`. Nothing in the service imports this package.
"""
