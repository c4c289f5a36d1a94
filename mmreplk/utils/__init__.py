from .io import (atomic_save, atomic_write, check_checkpoint_file, download_checkpoint,
                 is_atomic_temporary, load_checkpoint_file)

__all__ = ['atomic_save', 'atomic_write', 'check_checkpoint_file', 'download_checkpoint',
           'is_atomic_temporary', 'load_checkpoint_file']
