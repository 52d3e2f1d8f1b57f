"""Provider webhooks (Dittofeed §5.2, §8.3): each provider's signature check and the mapping of its
delivery events to DF status events.

`status_events` is the shared mapping to event rows; `tenancy` finds the provider secret that verifies a
request (a child falls back to its parent's) and decides which workspaces a verified request may write
to. One module per provider: `sendgrid`, `amazon_ses` (with `sns`, the SNS message signature),
`resend`, `postmark`, `mandrill`, `twilio`; `form_signatures` is the URL-plus-sorted-parameters HMAC
that Mandrill and Twilio share.
"""
