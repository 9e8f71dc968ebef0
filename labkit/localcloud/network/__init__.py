"""The VPC enforced: the network model deciding every connection the cloud carries (:mod:`.service`), the
instances' ports at their public IPs (:mod:`.instances`), listeners (:mod:`.listeners`), the kernel-side wiring and the
connect() hook (:mod:`.wiring`, ``netlink.c``), and the public addresses moto hands out (:mod:`.patches`)."""
