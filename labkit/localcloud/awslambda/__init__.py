"""Lambda: warm workers running the real code in awslambdaric (:mod:`.service`, :mod:`.runtime`), the execution
role checks (:mod:`.roles`), layers kept in files (:mod:`.layers`). Named as moto names it (``lambda`` is a Python
keyword); its registry key is AWS's name, ``lambda``."""
