"""Gmail adapters, one module per concern: ``api`` (the read-only GmailClient capture uses),
``wire`` (Gmail's JSON decoded into the port's types), ``credentials`` (domain-wide delegation),
``drafts`` (``users.drafts.create``) and ``send`` (the digest's ``users.messages.send``).

Nothing is imported here: a caller that needs only the credentials' scope names must not pay
for the discovery client.
"""
