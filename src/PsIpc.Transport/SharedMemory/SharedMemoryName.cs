using System;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>Segment names: 1 to 100 characters from A-Z a-z 0-9 . _ -, not starting with '.', so that a name
    /// is one safe file name on every platform (no '/', no '..').</summary>
    public static class SharedMemoryName
    {
        public const int MaxLength = 100;

        public static void Validate(string name)
        {
            string? why = null;
            if (string.IsNullOrEmpty(name)) why = "it is empty";
            else if (name.Length > MaxLength) why = $"it has {name.Length} characters (at most {MaxLength})";
            else if (name[0] == '.') why = "it starts with '.'";
            else
            {
                foreach (char c in name)
                {
                    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                    if (!ok)
                    {
                        why = $"it contains '{c}'";
                        break;
                    }
                }
            }
            if (why != null)
            {
                throw new IpcException(IpcErrorKind.InvalidSharedMemoryName,
                    $"'{name}' is not a valid shared memory name: {why}. Use 1 to {MaxLength} characters from A-Z a-z 0-9 . _ - (not starting with '.').", name);
            }
        }
    }
}
