"""RDS: a real MySQL/MariaDB server per instance (:mod:`.service`), with TLS (:mod:`.tls`), RDS events
(:mod:`.events`) and the engine catalogue (:mod:`.catalog`)."""
