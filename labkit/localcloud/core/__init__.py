"""The local cloud's core: the daemon, the service protocol and registry, request classification, AWS errors,
the moto patch registry, the models botocore reads, HTTP keep-alive and the lab clock. It imports no service
package: :mod:`labkit.localcloud.server` composes the daemon from them."""
