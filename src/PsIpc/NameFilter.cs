using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Management.Automation;

namespace PsIpc
{
    /// <summary>
    /// What every Get- command of the module does with its -Name: no names lists everything; each name is a
    /// wildcard pattern; a plain name that matches nothing is a not-found error (a pattern that matches
    /// nothing is quiet, as with Get-Process); a pattern that is not valid ('[') is an InvalidWildcardPattern
    /// error, and the other names are still looked up.
    /// </summary>
    internal static class NameFilter
    {
        public static void WriteMatches<T>(Cmdlet cmdlet, IReadOnlyCollection<T> items, string[]? names, WildcardOptions options,
            Func<T, WildcardPattern, bool> isMatch, Func<string, ErrorRecord> notFound, Func<T, object?>? output = null)
        {
            Func<T, object?> shape = output ?? (item => item);
            if (names == null)
            {
                foreach (T item in items) cmdlet.WriteObject(shape(item));
                return;
            }
            foreach (string name in names)
            {
                if (!TryParse(name, options, out WildcardPattern? pattern, out ErrorRecord? invalid))
                {
                    cmdlet.WriteError(invalid);
                    continue;
                }
                var matches = items.Where(item => isMatch(item, pattern)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    cmdlet.WriteError(notFound(name));
                }
                foreach (T item in matches) cmdlet.WriteObject(shape(item));
            }
        }

        // WildcardPattern parses on its first match, and a bad pattern would then throw from inside the filter.
        private static bool TryParse(string name, WildcardOptions options,
            [NotNullWhen(true)] out WildcardPattern? pattern, [NotNullWhen(false)] out ErrorRecord? invalid)
        {
            invalid = null;
            pattern = WildcardPattern.Get(name, options);
            try
            {
                pattern.IsMatch(string.Empty);
                return true;
            }
            catch (WildcardPatternException e)
            {
                var error = new ArgumentException(
                    $"'{name}' is not a valid wildcard pattern ({e.Message}). To match [ or ] as themselves, escape them with a backtick: `[ and `].", e);
                invalid = ErrorMapping.ToErrorRecord(error, "InvalidWildcardPattern", ErrorCategory.InvalidArgument, name);
                pattern = null;
                return false;
            }
        }
    }
}
