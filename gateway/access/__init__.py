"""Who calls and what each caller may do: authentication of the credentials a
front hands over, the policy evaluated at the core's door, the audit trail.
No gRPC or HTTP here: the fronts extract credentials, this package judges them.
"""
