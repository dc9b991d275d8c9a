-- localcode language server configuration, in the shape of nvim-lspconfig's lsp/ files.
-- On Neovim 0.11+ with this plugin on 'runtimepath':  vim.lsp.enable("localcode")
-- (require("localcode").setup() does that for you and adds :LspLocalcode and ghost text).
return require("localcode.config").lsp_config()
